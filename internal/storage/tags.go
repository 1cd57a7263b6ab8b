package storage

import "github.com/cloudpacs/pacs/internal/dcm"

// Tags of the attributes the index keeps in columns or matches on. They
// live here until dcm grows a tag table; values are the standard tags.
const (
	TagSpecificCharacterSet            dcm.Tag = 0x00080005
	TagSOPClassUID                     dcm.Tag = 0x00080016
	TagSOPInstanceUID                  dcm.Tag = 0x00080018
	TagStudyDate                       dcm.Tag = 0x00080020
	TagSeriesDate                      dcm.Tag = 0x00080021
	TagAcquisitionDate                 dcm.Tag = 0x00080022
	TagContentDate                     dcm.Tag = 0x00080023
	TagStudyTime                       dcm.Tag = 0x00080030
	TagSeriesTime                      dcm.Tag = 0x00080031
	TagContentTime                     dcm.Tag = 0x00080033
	TagAccessionNumber                 dcm.Tag = 0x00080050
	TagModality                        dcm.Tag = 0x00080060
	TagModalitiesInStudy               dcm.Tag = 0x00080061
	TagSOPClassesInStudy               dcm.Tag = 0x00080062
	TagManufacturer                    dcm.Tag = 0x00080070
	TagInstitutionName                 dcm.Tag = 0x00080080
	TagReferringPhysicianName          dcm.Tag = 0x00080090
	TagTimezoneOffsetFromUTC           dcm.Tag = 0x00080201
	TagStationName                     dcm.Tag = 0x00081010
	TagStudyDescription                dcm.Tag = 0x00081030
	TagSeriesDescription               dcm.Tag = 0x0008103E
	TagPatientName                     dcm.Tag = 0x00100010
	TagPatientID                       dcm.Tag = 0x00100020
	TagIssuerOfPatientID               dcm.Tag = 0x00100021
	TagPatientBirthDate                dcm.Tag = 0x00100030
	TagPatientSex                      dcm.Tag = 0x00100040
	TagBodyPartExamined                dcm.Tag = 0x00180015
	TagStudyInstanceUID                dcm.Tag = 0x0020000D
	TagSeriesInstanceUID               dcm.Tag = 0x0020000E
	TagStudyID                         dcm.Tag = 0x00200010
	TagSeriesNumber                    dcm.Tag = 0x00200011
	TagInstanceNumber                  dcm.Tag = 0x00200013
	TagNumberOfFrames                  dcm.Tag = 0x00280008
	TagRows                            dcm.Tag = 0x00280010
	TagColumns                         dcm.Tag = 0x00280011
	TagBitsAllocated                   dcm.Tag = 0x00280100
	TagScheduledProcedureStepID        dcm.Tag = 0x00400009
	TagPerformedProcedureStepStartDate dcm.Tag = 0x00400244
	TagPerformedProcedureStepStartTime dcm.Tag = 0x00400245
	TagRequestAttributesSequence       dcm.Tag = 0x00400275
	TagRequestedProcedureID            dcm.Tag = 0x00401001
)
